"""Demo deployment: a synthetic but realistic preschool enrollment registry to exercise the gateway."""
