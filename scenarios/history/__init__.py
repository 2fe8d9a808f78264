"""The history format (docs/history-format.md): its definitions (schema), the JSON Lines reader
and the binary form."""
