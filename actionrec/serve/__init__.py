"""``actionrec serve``: a checkpoint behind a JSON API and a web page. ``service`` holds what is done
with an upload, ``app`` the HTTP layer (FastAPI), ``page.html`` the page."""
