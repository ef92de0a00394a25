using Gatehouse.Samples.ConsoleApp;

if (args.Length != 5 || !Uri.TryCreate(args[0], UriKind.Absolute, out var backend) || !Uri.TryCreate(args[1], UriKind.Absolute, out var gatehouse))
{
    Console.Error.WriteLine("Usage: dotnet run --project samples/ConsoleApp -- <backend url> <gatehouse url> <api key> <username> <password>");
    return 2;
}
return await LoginSample.RunAsync(backend, gatehouse, args[2], args[3], args[4], Console.Out, Console.Error);
