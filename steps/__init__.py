"""The Gherkin vocabulary of drill (shipped as drill.steps)."""
