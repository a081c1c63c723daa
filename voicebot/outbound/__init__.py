"""Calling out: campaigns from a contact list (pure scheduling in ``campaigns``, contact lists
in ``contacts``), their SQLite store (``store``) and the dialler that places the calls."""
