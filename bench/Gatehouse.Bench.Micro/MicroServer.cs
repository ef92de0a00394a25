using Gatehouse.Server;
using Gatehouse.Server.Storage;
using Gatehouse.Server.Tokens;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;

namespace Gatehouse.Bench.Micro;

/// <summary>
/// The server's own services over a real SQLite file in a folder of its own, migrated and with its signing keys
/// loaded: what every measurement here runs against. Disposing it stops it and deletes the folder.
/// </summary>
internal sealed class MicroServer : IAsyncDisposable
{
    private readonly IHost _host;
    private readonly string _directory;

    private MicroServer(IHost host, string directory)
    {
        _host = host;
        _directory = directory;
    }

    public IServiceProvider Services => _host.Services;

    /// <param name="settings">Configuration on top of the data folder's, e.g. a cache's size.</param>
    public static async Task<MicroServer> StartAsync(IReadOnlyDictionary<string, string?> settings)
    {
        var directory = Directory.CreateTempSubdirectory("gatehouse-micro").FullName;
        var builder = Host.CreateApplicationBuilder();
        builder.Configuration.AddInMemoryCollection(new Dictionary<string, string?>(settings)
        {
            ["Gatehouse:DataDirectory"] = directory,
            ["Logging:LogLevel:Default"] = "Warning",
        });
        builder.Services.AddGatehouseCore();
        var server = new MicroServer(builder.Build(), directory);
        await server._host.StartAsync();
        await StorageSetup.MigrateAsync(server.Services);
        var keys = server.Services.GetRequiredService<SigningKeys>();
        if (!keys.Loaded)
            await keys.LoadAsync();
        return server;
    }

    public async ValueTask DisposeAsync()
    {
        await _host.StopAsync();
        _host.Dispose();
        Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
        Directory.Delete(_directory, recursive: true);
    }
}
