"""The marketing database: persons, companies, lists, activities and the field catalog."""
