"""The billing module's demo data for the two seed towns (loaded by ``guichet demo``)."""


def load_billing_demo() -> list[str]:
    """Load the demo data (idempotent) and return one line per thing loaded, for the console."""
    return []
