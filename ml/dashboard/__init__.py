"""`etrm dashboard`: the web page a risk team keeps open (models, versions, drift, jobs,
alerts, serving health), a Flask application over the home's stores and ML Metadata, with
plotly.js served from the installed plotly package (no CDN)."""
