"""HR: webhook subscribers (add, look at the delivery log, disable and enable again)."""

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.db.models import Count, Max, Q
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET

from .. import webhooks
from ..access import hr_required
from ..forms import WebhookSubscriberForm
from ..models import WebhookDelivery, WebhookSubscriber

PAGE_SIZE = 50


@require_GET
@hr_required
def subscriber_list(request):
    subscribers = WebhookSubscriber.objects.select_related("created_by").annotate(
        delivered=Count("deliveries", filter=Q(deliveries__status=WebhookDelivery.Status.DELIVERED)),
        failed=Count("deliveries", filter=Q(deliveries__status=WebhookDelivery.Status.FAILED)),
        last_delivery=Max("deliveries__created_at"),
    )
    return render(request, "guidelines/hr/webhook_list.html", {"subscribers": subscribers})


@hr_required
def subscriber_new(request):
    form = WebhookSubscriberForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            subscriber, secret = webhooks.add_subscriber(by=request.user, **form.cleaned_data)
        except ValidationError as error:
            form.add_error(None, error)
        else:
            # The secret is shown in this answer only (never stored in clear, never in a redirect).
            return _detail(request, subscriber, secret=secret)
    return render(request, "guidelines/hr/webhook_form.html", {"form": form, "error_form": form})


def _detail(request, subscriber, secret=None):
    deliveries = subscriber.deliveries.select_related("event").order_by("-created_at", "-pk")
    page = Paginator(deliveries, PAGE_SIZE).get_page(request.GET.get("page"))
    return render(request, "guidelines/hr/webhook_detail.html",
                  {"subscriber": subscriber, "page": page, "secret": secret})


@require_GET
@hr_required
def subscriber_detail(request, pk):
    subscriber = get_object_or_404(WebhookSubscriber.objects.select_related("created_by", "disabled_by"), pk=pk)
    return _detail(request, subscriber)


def _switch(request, pk, *, enabling):
    """A confirmation page; its POST disables or enables the subscriber."""
    subscriber = get_object_or_404(WebhookSubscriber, pk=pk)
    if request.method != "POST":
        missed_since = webhooks.missed_since(subscriber) if enabling and not subscriber.is_active else None
        missed = webhooks.missed_events(subscriber, missed_since).count() if missed_since else 0
        return render(request, "guidelines/hr/webhook_switch_confirm.html",
                      {"subscriber": subscriber, "enabling": enabling, "missed": missed, "missed_since": missed_since})
    if enabling:
        resend = request.POST.get("resend_missed") == "on"
        webhooks.enable(subscriber, by=request.user, resend_missed=resend)
        if resend:
            messages.success(request, _("The subscriber receives events again; what it missed is being sent."))
        else:
            messages.success(request, _("The subscriber receives events again."))
    else:
        webhooks.disable(subscriber, by=request.user)
        messages.success(request, _("The subscriber receives no more events."))
    return redirect("guidelines:hr_webhook", pk=subscriber.pk)


@hr_required
def subscriber_disable(request, pk):
    return _switch(request, pk, enabling=False)


@hr_required
def subscriber_enable(request, pk):
    return _switch(request, pk, enabling=True)
