"""Jifen's Chalice app: registers each domain's blueprints, schedules and workflow tasks. Nothing else."""

from chalice.app import Chalice, Cron, Rate

import chalicelib.wiring  # noqa: F401  (every domain's hook subscriptions)
from chalicelib.core import effects
from chalicelib.core.http import middleware
from chalicelib.core.http import routes as core_routes
from chalicelib.mall import jobs as mall_jobs
from chalicelib.mall import routes_admin as mall_admin
from chalicelib.mall import routes_after_sales as mall_after_sales
from chalicelib.mall import routes_codes as mall_codes
from chalicelib.mall import routes_member as mall_member
from chalicelib.mall import routes_pages as mall_pages
from chalicelib.mall import routes_records as mall_records
from chalicelib.mall import routes_shipping as mall_shipping
from chalicelib.mall import workflows as orders
from chalicelib.mall import workflows_after_sales as after_sales
from chalicelib.payments import routes_admin as payments_admin
from chalicelib.points import jobs as expiry
from chalicelib.points import routes_admin as points_admin
from chalicelib.points import routes_member as points_member
from chalicelib.points import routes_server as points_server
from chalicelib.tasks import routes_admin as tasks_admin
from chalicelib.tasks import routes_member as tasks_member
from chalicelib.tasks import routes_server as tasks_server
from chalicelib.tasks import routes_webhooks as tasks_webhooks
from chalicelib.tasks import workflows as receipts
from chalicelib.tenancy import routes_admin as tenancy_admin
from chalicelib.tenancy import routes_public as tenancy_public
from chalicelib.tenancy import routes_verifier as tenancy_verifier

app = Chalice(app_name="jifen", configure_logs=False)
app.experimental_feature_flags.update(["BLUEPRINTS"])

for blueprint in (
    core_routes.public,
    tenancy_public.public,
    tenancy_admin.admin,
    tenancy_verifier.verifier,
    points_member.member,
    points_admin.admin,
    points_server.server,
    tasks_member.member,
    tasks_admin.admin,
    tasks_server.server,
    tasks_webhooks.hooks,
    payments_admin.admin,
    mall_member.shop,
    mall_admin.mall_admin,
    mall_pages.page_admin,
    mall_pages.page_member,
    mall_codes.codes,
    mall_records.mall_records,
    mall_after_sales.refund_member,
    mall_after_sales.refund_admin,
    mall_shipping.mall_shipping,
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
order_needs_attention = app.lambda_function(name="order_needs_attention")(orders.order_needs_attention)
# orders (and refund requests) whose workflow failed or never started: re-driven, cancelled, or left to an operator
reconcile_orders = app.schedule(Rate(15, unit=Rate.MINUTES), name="reconcile_orders")(mall_jobs.reconcile_orders)
# post-commit effects (task credits after an exchange or a login) whose subscriber failed: applied again until they succeed
retry_effects = app.schedule(Rate(5, unit=Rate.MINUTES), name="retry_effects")(effects.retry_effects)

after_sales_review_wait = app.lambda_function(name="after_sales_review_wait")(after_sales.after_sales_review_wait)
after_sales_review_apply = app.lambda_function(name="after_sales_review_apply")(after_sales.after_sales_review_apply)
after_sales_review_failed = app.lambda_function(name="after_sales_review_failed")(after_sales.after_sales_review_failed)
after_sales_review_timeout = app.lambda_function(name="after_sales_review_timeout")(after_sales.after_sales_review_timeout)

import_codes = app.lambda_function(name="import_codes")(mall_jobs.import_codes)
