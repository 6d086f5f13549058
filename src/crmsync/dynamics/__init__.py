"""The Dataverse Web API client: the only code in crmsync that talks to Dynamics."""
