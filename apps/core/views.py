from django.http import JsonResponse

from apps.core.health import run_checks


async def healthz(request):
    checks = await run_checks()
    healthy = all(state == "ok" for state in checks.values())
    return JsonResponse({"status": "ok" if healthy else "unavailable", "checks": checks},
                        status=200 if healthy else 503)
