"""HTTP layer: route table, controllers and thin handlers."""
