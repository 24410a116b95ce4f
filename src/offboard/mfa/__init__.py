"""Second factors: TOTP with recovery codes, passkeys (WebAuthn), the organization's
second-factor policy, and the sign-in's second step (decision 0027)."""
