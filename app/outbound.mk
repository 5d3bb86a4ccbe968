## app/: outbound HTTP clients (Botmatic API, external REST consumer) and their tests.
