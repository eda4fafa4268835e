"""The service's routes, one module per resource; each exposes `router` (a ShapedRoute APIRouter)."""
