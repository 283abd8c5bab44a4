"""dockerd's own log files: opened ahead, read directly, and watched for rotation."""
