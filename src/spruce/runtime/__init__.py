"""The runtime side of the control plane: it reacts to what services change.

Services publish events; the runtime converges dynos, feeds the router's table, runs
release phases and serves git. Each concern has its own module.
"""
