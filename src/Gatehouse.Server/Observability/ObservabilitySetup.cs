using Gatehouse.Server.Api;
using Gatehouse.Server.Configuration;
using Gatehouse.Server.Operations;
using Gatehouse.Server.Refusals;
using Gatehouse.Server.Storage;
using Gatehouse.Server.Tokens;
using Microsoft.Extensions.Options;
using Npgsql;
using OpenTelemetry.Metrics;
using Scalar.AspNetCore;

namespace Gatehouse.Server.Observability;

internal sealed record ReadyResponse(string Status);

[System.Text.Json.Serialization.JsonSourceGenerationOptions(System.Text.Json.JsonSerializerDefaults.Web)]
[System.Text.Json.Serialization.JsonSerializable(typeof(ReadyResponse))]
internal sealed partial class ObservabilityJson : System.Text.Json.Serialization.JsonSerializerContext;

/// <summary>Health, readiness, Prometheus metrics and the API reference, wired once.</summary>
internal static class ObservabilitySetup
{
    public static IServiceCollection AddGatehouseObservability(this IServiceCollection services)
    {
        services.AddOpenTelemetry().WithMetrics(metrics => metrics
            // System.Runtime: the process's memory and the GC's heap beside it, so an operator (and bench/) can tell what
            // the managed heap holds from what the rest of the process does (docs/operations.md).
            .AddMeter(SecurityMetrics.MeterName, "Microsoft.AspNetCore.Hosting", "Microsoft.AspNetCore.Server.Kestrel", "System.Runtime")
            // Each scrape reads the counters as they are: the exporter's default keeps an answer 300 ms, so a scrape
            // right after a change (an operator checking an alert, a test) showed the value from before it.
            .AddPrometheusExporter(prometheus => prometheus.ScrapeResponseCacheDurationMilliseconds = 0));
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

    /// <summary>
    /// A load balancer gives up on a probe after a few seconds and counts the node as failed anyway: a 503 within
    /// this is worth more than one after the connection string's whole connect timeout.
    /// </summary>
    private const int ReadinessTimeoutSeconds = 2;

    /// <summary>
    /// Ready when the start-up steps have run, the database answers (within <see cref="ReadinessTimeoutSeconds"/>) and
    /// the signing keys are loaded; otherwise 503 in the envelope.
    /// </summary>
    private static async Task<IResult> ReadyAsync(StartupGate startup, IOptions<GatehouseOptions> options, GatehouseDb db, SigningKeys keys,
        CancellationToken ct)
    {
        if (!startup.IsOpen)
            return Errors.Starting.AsResult();
        bool databaseAnswers;
        try
        {
            databaseAnswers = StorageSetup.UsesPostgreSql(options.Value)
                ? await PostgreSqlAnswersAsync(StorageSetup.PostgreSqlConnectionString(options.Value), ct)
                : await db.Database.CanConnectAsync(ct);
        }
        catch (Exception e) when (e is InvalidOperationException or System.Data.Common.DbException)
        {
            databaseAnswers = false;
        }
        if (!databaseAnswers)
            return Errors.NotReady("The database does not answer.").AsResult();
        if (!keys.Loaded)
            return Errors.NotReady("The signing keys are not loaded yet.").AsResult();
        return TypedResults.Json(new ReadyResponse("ready"), ObservabilityJson.Default.ReadyResponse);
    }

    /// <summary>
    /// What EF Core's CanConnect does (open a connection of its own, outside the pool, so a broken pooled one proves
    /// nothing), with the connect timeout capped: Npgsql does not cancel an open that waits for a hung server's first
    /// answer, so a cancellation token could not bound it, and the operator's Timeout may be long.
    /// </summary>
    private static async Task<bool> PostgreSqlAnswersAsync(string connectionString, CancellationToken ct)
    {
        var probe = new NpgsqlConnectionStringBuilder(connectionString) { Pooling = false, Multiplexing = false };
        if (probe.Timeout is 0 or > ReadinessTimeoutSeconds)
            probe.Timeout = ReadinessTimeoutSeconds;
        await using var connection = new NpgsqlConnection(probe.ConnectionString);
        try
        {
            await connection.OpenAsync(ct);
            return true;
        }
        catch (NpgsqlException)
        {
            return false;
        }
    }
}
