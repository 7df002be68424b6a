"""The asyncio client every component uses to talk to API servers: kubeconfig loading, a REST
client with retries and rate limits, informers, a work queue and leader election."""
