"""Frontend: decorators, annotations, the DSL names, and the AST → IR code generator."""
