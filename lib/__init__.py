"""Everything that is not page layout."""
