"""The machinery every layer runs on: message-passing primitives per engine, the engine
decision, the dense (padded SDPA) engine, input checks."""
