"""What this server offers: registered models, benchmarks and corpus indexes."""
