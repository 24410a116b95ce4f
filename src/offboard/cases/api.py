"""API router (placeholder until written)."""

from ninja import Router

router = Router()
