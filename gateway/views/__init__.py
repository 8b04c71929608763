"""The gateway's views, one module per part of the API; ``gateway.routes`` lists them."""
