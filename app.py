"""Jifen's Chalice app: registers blueprints, middleware, schedules and workflow tasks. Nothing else."""

from chalice.app import Chalice, Cron, Rate

from chalicelib.api import middleware
from chalicelib.api.admin import admin
from chalicelib.api.mall import shop
from chalicelib.api.mall_admin import mall_admin
from chalicelib.api.mall_after_sales import refund_admin, refund_member
from chalicelib.api.mall_codes import codes
from chalicelib.api.mall_pages import page_admin, page_member
from chalicelib.api.mall_records import mall_records
from chalicelib.api.mall_shipping import mall_shipping
from chalicelib.api.member import member
from chalicelib.api.public import public
from chalicelib.api.server import server
from chalicelib.api.verifier import verifier
from chalicelib.api.webhooks import hooks
from chalicelib.jobs import codes as codes_job
from chalicelib.jobs import expiry
from chalicelib.workflows import after_sales, orders, receipts

app = Chalice(app_name="jifen", configure_logs=False)
app.experimental_feature_flags.update(["BLUEPRINTS"])

for blueprint in (
    public,
    member,
    admin,
    verifier,
    server,
    hooks,
    shop,
    mall_admin,
    page_admin,
    page_member,
    codes,
    mall_records,
    refund_member,
    refund_admin,
    mall_shipping,
):
    app.register_blueprint(blueprint)

middleware.register(app, middleware.powertools, middleware.http_middleware(app))

# Lambda handlers are "app.<name>": each registered function is also a module attribute of that name.
expire_points = app.schedule(Rate(1, unit=Rate.HOURS), name="expire_points")(expiry.expire_points)
remind_expiring_points = app.schedule(Cron(0, 1, "*", "*", "?", "*"), name="remind_expiring_points")(expiry.remind_expiring_points)

receipt_review_wait = app.lambda_function(name="receipt_review_wait")(receipts.receipt_review_wait)
receipt_review_apply = app.lambda_function(name="receipt_review_apply")(receipts.receipt_review_apply)
receipt_review_timeout = app.lambda_function(name="receipt_review_timeout")(receipts.receipt_review_timeout)

order_wait = app.lambda_function(name="order_wait")(orders.order_wait)
order_settle_payment = app.lambda_function(name="order_settle_payment")(orders.order_settle_payment)
order_pay_out = app.lambda_function(name="order_pay_out")(orders.order_pay_out)
order_cancel = app.lambda_function(name="order_cancel")(orders.order_cancel)
order_confirm_shipment = app.lambda_function(name="order_confirm_shipment")(orders.order_confirm_shipment)

after_sales_review_wait = app.lambda_function(name="after_sales_review_wait")(after_sales.after_sales_review_wait)
after_sales_review_apply = app.lambda_function(name="after_sales_review_apply")(after_sales.after_sales_review_apply)
after_sales_review_failed = app.lambda_function(name="after_sales_review_failed")(after_sales.after_sales_review_failed)
after_sales_review_timeout = app.lambda_function(name="after_sales_review_timeout")(after_sales.after_sales_review_timeout)

import_codes = app.lambda_function(name="import_codes")(codes_job.import_codes)
