"""Jifen's Chalice app: registers blueprints, middleware, schedules and workflow tasks. Nothing else."""

from chalice import Chalice

app = Chalice(app_name="jifen")


@app.route("/v1/health")
def health() -> dict:
    return {"ok": True}
