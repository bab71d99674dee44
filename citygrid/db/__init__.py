"""The database: engine (engine.py), migrations run at every start (migrate.py, bootstrap.py), the private
PostGIS cluster used when no DATABASE_URL is given (cluster.py), and the schema's picture with the project's
SQL-first policy and its list of triggers (models.py)."""
