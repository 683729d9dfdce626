"""Scripts the tests run as separate processes (killed, or two servers at once)."""
