using Gatehouse.Server;
using Gatehouse.Server.Configuration;
using Gatehouse.Server.Operations;
using Gatehouse.Server.Storage;

if (OperatorCommands.IsCommand(args))
    return await OperatorCommands.RunAsync(args, Console.Out, Console.Error);

WebApplication? app = null;
try
{
    app = GatehouseApp.Build(args);
    // Listening first, so a node started before its database (or during an outage) answers its probes and waits.
    await app.StartAsync();
    app.Services.GetRequiredService<StartupGate>().ReportGarbageCollector();
    // Standard output that is not a terminal (a service manager, a container's log) is a log: the first start's
    // secrets then go to a private file instead (Bootstrap).
    await GatehouseApp.InitializeWhenDatabaseAnswersAsync(app, Console.Out, outputIsTerminal: !Console.IsOutputRedirected, app.Lifetime.ApplicationStopping);
    await app.WaitForShutdownAsync();
    return 0;
}
catch (Exception e) when (ConfigurationProblems.Of(e) is { } problems)
{
    await Console.Error.WriteLineAsync("Gatehouse cannot start: the configuration is invalid.");
    foreach (var problem in problems)
        await Console.Error.WriteLineAsync($"  {problem}");
    // It may already be listening (a problem found by the start-up steps): stopped, so its services end quietly.
    if (app is not null)
        await app.StopAsync();
    return 2;
}
catch (StorageTooNewException e)
{
    await Console.Error.WriteLineAsync($"Gatehouse cannot start: {e.Message}");
    // It was already listening, answering 503.
    await app!.StopAsync();
    return 3;
}
finally
{
    if (app is not null)
        await app.DisposeAsync();
}
