"""Core's builtin plugins, registered through the same hooks as any installed distribution."""
