"""Publishers: the newsroom's CMS and the news site's servers, which call the service with a
publisher API key rather than a reader's session."""
