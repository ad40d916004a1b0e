"""Jifen's Chalice app: registers blueprints, middleware, schedules and workflow tasks. Nothing else."""

from chalice.app import Chalice, Cron, Rate

from chalicelib.api import middleware
from chalicelib.api.admin import admin
from chalicelib.api.mall import shop
from chalicelib.api.mall_admin import mall_admin
from chalicelib.api.member import member
from chalicelib.api.public import public
from chalicelib.api.server import server
from chalicelib.api.verifier import verifier
from chalicelib.api.webhooks import hooks
from chalicelib.jobs import expiry
from chalicelib.workflows import receipts

app = Chalice(app_name="jifen", configure_logs=False)
app.experimental_feature_flags.update(["BLUEPRINTS"])

for blueprint in (public, member, admin, verifier, server, hooks, shop, mall_admin):
    app.register_blueprint(blueprint)

middleware.register(app, middleware.powertools, middleware.http_middleware(app))

# Lambda handlers are "app.<name>": each registered function is also a module attribute of that name.
expire_points = app.schedule(Rate(1, unit=Rate.HOURS), name="expire_points")(expiry.expire_points)
remind_expiring_points = app.schedule(Cron(0, 1, "*", "*", "?", "*"), name="remind_expiring_points")(expiry.remind_expiring_points)

receipt_review_wait = app.lambda_function(name="receipt_review_wait")(receipts.receipt_review_wait)
receipt_review_apply = app.lambda_function(name="receipt_review_apply")(receipts.receipt_review_apply)
receipt_review_timeout = app.lambda_function(name="receipt_review_timeout")(receipts.receipt_review_timeout)
