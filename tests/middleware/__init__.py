"""What the two middlewares do with a request: tokens, cookies, headers, the turn, rotation,
expiry, faults at the edge."""
