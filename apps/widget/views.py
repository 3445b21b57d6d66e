from __future__ import annotations

from django.http import Http404, HttpRequest, HttpResponse, HttpResponseNotModified
from django.shortcuts import render
from django.utils.cache import patch_cache_control
from django.views.decorators.http import require_safe

from apps.widget.assets import asset_load
from apps.widget.demo import DEMO_SHOPPERS, user_hash_compute


@require_safe
def demo_shop(request: HttpRequest) -> HttpResponse:
    """The fictional shop that embeds the widget; `?as=<id>` signs in as a demo shopper."""
    shopper = DEMO_SHOPPERS.get(request.GET.get("as", ""))
    context = {
        # Where the widget finds Kefu; on a customer's site this is Kefu's public address.
        "kefu_url": request.build_absolute_uri("/").rstrip("/"),
        "shopper": shopper,
        "user_hash": user_hash_compute(user_id=shopper.user_id) if shopper else "",
        "shoppers": DEMO_SHOPPERS.values(),
    }
    return render(request, "widget/demo_shop.html", context)


@require_safe
def widget_asset(request: HttpRequest, name: str) -> HttpResponse:
    asset = asset_load(name=name)
    if asset is None:
        raise Http404("No such widget file.")
    etag = f'"{asset.etag}"'
    if etag in request.headers.get("If-None-Match", ""):
        response: HttpResponse = HttpResponseNotModified()
    else:
        response = HttpResponse(asset.body, content_type=asset.content_type)
    response["ETag"] = etag
    # The URL is stable (pasted into customer sites), so keep the cache short and revalidate.
    patch_cache_control(response, public=True, max_age=300)
    # Host pages on any origin load these files.
    response["Access-Control-Allow-Origin"] = "*"
    response["Cross-Origin-Resource-Policy"] = "cross-origin"
    return response
