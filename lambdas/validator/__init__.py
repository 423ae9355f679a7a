"""The validator Lambda: judges each Invoke that EventBridge delivers, queues violations."""
