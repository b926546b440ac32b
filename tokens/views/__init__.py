"""Management pages of the Admin Panel, one page a module.

- `users`: User Management — the table, inline cells, batches, bulk edits, Paid/Banned flags.
- `members`: User Management's people — invitations, a member's role, removal.
- `user_page`: the User Management context both of them render (table, pools, invitations).
- `distribution`: Token Distribution — presets, actions, reclamation, overrides, options,
  purchase requests.
- `requests`: Token Requests — the tabs and the approve/deny decisions.
- `api_keys`: the organization's usage API keys.
- `_common`: what they share (the member lookup, the text check, the bound-form error text).

Every answer goes through `asksage_admin.lib.htmx` (a fragment under htmx, 422 on refusal;
a message and a redirect otherwise).
"""
