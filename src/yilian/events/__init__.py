"""The outbox: news that crosses a boundary is written in the same transaction and delivered after commit."""
