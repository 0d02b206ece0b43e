"""Local Google Cloud stand-ins and the stack runner (dev and test only, never deployed)."""
