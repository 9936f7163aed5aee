"""A small shop app with its own test suite, run under the pytest plugin by the QA tests."""
