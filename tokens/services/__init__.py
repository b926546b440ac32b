"""Writes about tokens, one capability per module.

- `allocations`: pending edits, batch save and undo, bulk edits; `apply_changes`, the one
  validated, audited allocation write every other capability goes through.
- `requests`: members' token requests, approval (by an admin or the auto-approval rule), denial.
- `policy`: presets, custom settings, alert and auto-approval options, per-user overrides.
- `auto_increase`: the auto-increase policy after usage, and the usage alerts it sends.
- `distribution`: split / set / top up / floor actions, and reclamation of idle allocations.
- `purchases`: purchase requests to sales and their fulfilment.
- `api_keys`: the gateway's API keys, created and revoked by admins.
- `emails`: the mail those writes send.
- `_core`: what they share: column and kind checks, amount and whole-number parsing.

Import the capability module you need (`from tokens.services import requests as
request_services`); this package re-exports nothing.
"""
