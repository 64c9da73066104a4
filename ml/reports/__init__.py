"""Risk reports for people: a book-day's risk record looked up from what a home ingested."""
