namespace Gatehouse.Server.Storage;

/// <summary>
/// The request's database context, rented from the pool on first use. Services that usually answer from a node
/// cache (server keys, admin tokens, users) hold this instead of the context itself: renting and resetting a pooled
/// context costs a cached call more than the lookup (docs/benchmarks.md, changes 18 and 30).
/// </summary>
internal sealed class RequestDb(IServiceProvider requestServices)
{
    private GatehouseDb? _context;

    public GatehouseDb Context => _context ??= requestServices.GetRequiredService<GatehouseDb>();
}
