using Gatehouse.Server;
using Gatehouse.Server.Configuration;
using Gatehouse.Server.Operations;
using Gatehouse.Server.Storage;

if (OperatorCommands.IsCommand(args))
    return await OperatorCommands.RunAsync(args, Console.Out, Console.Error);

try
{
    var app = GatehouseApp.Build(args);
    await GatehouseApp.InitializeAsync(app, Console.Out);
    await app.RunAsync();
    return 0;
}
catch (Exception e) when (ConfigurationProblems.Of(e) is { } problems)
{
    await Console.Error.WriteLineAsync("Gatehouse cannot start: the configuration is invalid.");
    foreach (var problem in problems)
        await Console.Error.WriteLineAsync($"  {problem}");
    return 2;
}
catch (StorageTooNewException e)
{
    await Console.Error.WriteLineAsync($"Gatehouse cannot start: {e.Message}");
    return 3;
}
