"""distill of PRECTR-V2 (DESIGN §4); filled in by the model issue."""
