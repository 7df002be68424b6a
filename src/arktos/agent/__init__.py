"""The node agent (Arktos' unified kubelet): registers Nodes, keeps their Leases and status
current, and drives the pods bound to them through a runtime. Today only hollow nodes
(`HollowRuntime`, no processes) are implemented; see docs/agent.md."""
