"""The data and helpers of `seed_demo`: who the demo organizations are, and their usage."""
