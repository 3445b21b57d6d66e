from __future__ import annotations

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseNotModified, JsonResponse
from django.shortcuts import render
from django.utils import translation
from django.utils.cache import patch_cache_control
from django.views.decorators.http import require_safe
from django.views.i18n import JSONCatalog

from apps.widget.assets import asset_load
from apps.widget.demo import DEMO_SHOPPERS, user_hash_compute


def _language(tag: str) -> str:
    """The settings.LANGUAGES code for a BCP 47 tag ("zh-CN" -> "zh-hans"), else the default."""
    try:
        return translation.get_supported_language_variant(tag.strip().lower().replace("_", "-")[:35])
    except LookupError:
        return settings.LANGUAGE_CODE


@require_safe
def widget_catalog(request: HttpRequest, lang: str) -> HttpResponse:
    """The widget's strings in the language nearest `lang`: `{"language", "catalog"}` from the
    `djangojs` translations (locale/), for host pages on any origin."""
    code = _language(lang)
    with translation.override(code):
        catalog = JSONCatalog(domain="djangojs")
        catalog.translation = translation.trans_real.DjangoTranslation(code, domain="djangojs")
        strings = catalog.get_catalog()
    response = JsonResponse({"language": code, "catalog": strings}, json_dumps_params={"ensure_ascii": False})
    patch_cache_control(response, public=True, max_age=300)
    response["Access-Control-Allow-Origin"] = "*"
    response["Cross-Origin-Resource-Policy"] = "cross-origin"
    return response


@require_safe
def demo_shop(request: HttpRequest) -> HttpResponse:
    """The fictional shop that embeds the widget; `?as=<id>` signs in as a demo shopper, `?lang=`
    picks the page's language (English / 中文), which the widget follows."""
    shopper = DEMO_SHOPPERS.get(request.GET.get("as", ""))
    asked = request.GET.get("lang", "")
    language = _language(asked) if asked else translation.get_language()
    translation.activate(language)
    request.LANGUAGE_CODE = language
    context = {
        "language": language,
        "languages": settings.LANGUAGES,
        "signed_in_as": shopper.user_id if shopper else "",
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
