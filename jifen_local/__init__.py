"""Local runtime: embedded moto (serialized), Step Functions with in-process Lambda tasks, Chalice local."""
