"""Trawl: find the email addresses published on a set of websites.

The engine package. Data flows one way: request -> store -> worker -> store
-> progress; nothing here imports the web layer (app.py).
"""

__version__ = "0.1.0"
