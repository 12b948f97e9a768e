"""Relevance teachers that need torch (the `teacher` extra); no other module imports them."""
