using Gatehouse.Server.Api;
using Gatehouse.Server.Storage;
using Gatehouse.Server.Tokens;
using Microsoft.EntityFrameworkCore;
using OpenTelemetry.Metrics;
using Scalar.AspNetCore;

namespace Gatehouse.Server.Observability;

public sealed record ReadyResponse(string Status);

/// <summary>Health, readiness, Prometheus metrics and the API reference, wired once.</summary>
public static class ObservabilitySetup
{
    public static IServiceCollection AddGatehouseObservability(this IServiceCollection services)
    {
        services.AddOpenTelemetry().WithMetrics(metrics => metrics
            .AddMeter(SecurityMetrics.MeterName, "Microsoft.AspNetCore.Hosting", "Microsoft.AspNetCore.Server.Kestrel")
            .AddPrometheusExporter());
        services.AddGatehouseOpenApi();
        return services;
    }

    public static void MapGatehouseObservability(this WebApplication app)
    {
        app.MapGet("/healthz", () => TypedResults.Text("ok")).ExcludeFromDescription();
        app.MapGet("/readyz", ReadyAsync).ExcludeFromDescription();
        app.MapPrometheusScrapingEndpoint("/metrics");
        app.MapOpenApi("/openapi/{documentName}.json");
        app.MapScalarApiReference("/docs", scalar => scalar
            .WithTitle("Gatehouse API")
            .WithOpenApiRoutePattern("/openapi/{documentName}.json"));
    }

    /// <summary>Ready when the database answers and the signing keys are loaded; otherwise 503 in the envelope.</summary>
    private static async Task<IResult> ReadyAsync(GatehouseDb db, SigningKeys keys, CancellationToken ct)
    {
        bool databaseAnswers;
        try
        {
            databaseAnswers = await db.Database.CanConnectAsync(ct);
        }
        catch (Exception e) when (e is InvalidOperationException or System.Data.Common.DbException)
        {
            databaseAnswers = false;
        }
        if (!databaseAnswers)
            return new ApiError(503, 500000, "not_ready", "The database does not answer.");
        if (!keys.Loaded)
            return new ApiError(503, 500000, "not_ready", "The signing keys are not loaded yet.");
        return TypedResults.Json(new ReadyResponse("ready"), GatehouseJson.Default.ReadyResponse);
    }
}
