"""The unified scheduler: one algorithm places container pods and VM pods of every tenant.
Its core (`podinfo`, `nodes`, `filters`, `scores`, `algorithm`) is pure and vectorized: the
node cache keeps nodes as rows of numpy arrays, filters are boolean masks over those rows and
scores are vectors, so a placement at thousands of nodes costs a few dozen array operations
rather than a Python loop per node. No I/O in the core; the queue, binder and component
around it do the talking to the API server.
"""
